"""Makes monitoring_stack importable by the tests of this directory (pytest runs with importlib mode)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
