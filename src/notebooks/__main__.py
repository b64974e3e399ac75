"""`python -m src.notebooks demo|clean`: see `src.notebooks.run`."""
from src.notebooks.run import main

main()
