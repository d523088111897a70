import sys

from synthspot.cli import main

sys.exit(main())
