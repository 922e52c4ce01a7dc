"""A Flask application that sets up logging as Flask's documentation says ("Logging", "Basic
Configuration"): ``dictConfig`` at import, before the app is made, with
``disable_existing_loggers`` left to its default (true).  Served by ``kakehashi serve
tests.integration.flask_logging_app:app`` (test_logging_survives_app.py)."""

from __future__ import annotations

from logging.config import dictConfig

from flask import Flask

dictConfig(
    {
        "version": 1,
        "formatters": {
            "default": {"format": "[%(asctime)s] %(levelname)s in %(module)s: %(message)s"}
        },
        "handlers": {
            "wsgi": {
                "class": "logging.StreamHandler",
                "stream": "ext://flask.logging.wsgi_errors_stream",
                "formatter": "default",
            }
        },
        "root": {"level": "INFO", "handlers": ["wsgi"]},
    }
)

app = Flask(__name__)


@app.route("/")
def hello() -> str:
    app.logger.info("the view logs too")
    return "Hello from Flask"
