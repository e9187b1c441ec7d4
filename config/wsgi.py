"""The WSGI application for runserver and gunicorn.

The photo-search model and the current index build are loaded here, when a web process
starts, so the first upload does not wait for them; with ``gunicorn --preload`` they are
loaded once and shared by the workers.
Only web servers import this module, so only they are barred from converting the model
(importing TensorFlow): workers and commands convert it when it is missing.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
application = get_wsgi_application()

from recommender.active_model import preload_embedder  # noqa: E402  (needs Django set up)
from recommender.neighbours import preload_index  # noqa: E402

preload_embedder()
preload_index()
