import sys

from services.loans.bootstrap import build_spec
from shared.app import serve

serve(build_spec, sys.argv[1:])
