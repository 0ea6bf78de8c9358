"""Corpora in (WikiQA, TREC-QA, SelQA, ASNQ, tables, hub), teacher scores out."""
