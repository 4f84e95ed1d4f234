import sys

from astromined.monitoring.rules.generate import main

sys.exit(main())
