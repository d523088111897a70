"""synthspot: spot CNN-generated images among a platform's uploads.

Subpackages: ``synthspot.detector`` (model, weights, preprocessing, scoring, training,
evaluation), ``synthspot.worker`` (the Celery service), ``synthspot.integrations`` (S3,
webhooks, Slack). The ``synthspot`` command is ``synthspot.cli``.
"""
__version__ = "0.1.0"
