"""A Django shop whose Redo handlers use its ORM.

``settings.py`` is the project's settings, ``returns/`` its app (a model
and its migration), ``asgi.py`` Django's ASGI app with the receiver mounted
at ``/webhooks/redo/`` (or run it standalone: ``redo-hooks serve
examples.django_shop.hooks:hooks``), ``hooks.py`` the handlers: the workers
call ``django.setup()`` once per process (``@hooks.on_worker``) and the
handlers use the ORM as any Django code does.
"""
