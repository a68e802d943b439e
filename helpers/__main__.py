import sys

try:
    from .classroom.cli import main
except KeyboardInterrupt:  # Ctrl+C while starting up: no traceback
    sys.exit(130)

sys.exit(main())
