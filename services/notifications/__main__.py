import sys

from services.notifications.bootstrap import build_spec
from shared.app import serve

serve(build_spec, sys.argv[1:])
