import sys

from dlrun.cli import main

sys.exit(main())
