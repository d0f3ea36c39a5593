import sys

from dlrun.cli.main import main

sys.exit(main())
