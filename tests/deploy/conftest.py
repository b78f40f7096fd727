"""The compose-stack test needs a Docker engine and the images `make test-deploy` builds
(tests/deploy/run.sh): collected only there (ARTSTORE_TEST_DEPLOY=1), never by `make test`."""

import os

collect_ignore = [] if os.environ.get("ARTSTORE_TEST_DEPLOY") == "1" else ["test_compose_stack.py"]
