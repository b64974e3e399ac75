"""`python -m src.kaggle build|push|status`: see `src.kaggle.cli`."""
import sys

from src.kaggle.cli import main

sys.exit(main())
