"""Destinations: the change feed pushed to HTTPS endpoints, signed, retried and never lost.

``admin`` holds what an admin does (create, update, pause, resume, rotate, delete, resync,
replay, resend), ``deliverer`` the delivery itself, ``sending`` the signed request and the
egress checks, ``rules`` the settings they follow (the retry schedule among them).
"""
