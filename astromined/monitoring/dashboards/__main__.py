import sys

from astromined.monitoring.dashboards.generate import main

sys.exit(main())
