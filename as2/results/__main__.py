from as2.config import cli
from as2.results.page import main

cli(main)
