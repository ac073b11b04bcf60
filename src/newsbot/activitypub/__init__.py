"""The site as its own ActivityPub actor: discovery, documents, inbox and durable delivery.

Followers on any Mastodon-compatible server follow ``@news@<host>``; each
article reaches them as a ``Create{Note}``, a revision as an ``Update``, a
withdrawal as a ``Delete``, one durable delivery per (activity, inbox).
:mod:`newsbot.activitypub.federation` wires the parts for the service.
"""
