# Read by `flask` (python-dotenv) when run from a checkout: the same embedded defaults as `make run`.
# Production sets PAWMANITY_CONFIG=production in its environment, which wins over this file.
FLASK_APP=wsgi
PAWMANITY_CONFIG=development
