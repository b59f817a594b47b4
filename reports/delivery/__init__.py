"""How a report reaches people: the archive, the messages, the mail backends.

``archive`` (every PDF kept under a checked path, written atomically and hashed; verify and
prune), ``messages`` (one send's messages: the body's numbers and one message per recipient),
``mail`` (building a message: bodies, attachments, a Message-ID stable across retries) and
``mailer`` (the file outbox and SMTP backends, and the exactly-once delivery loop over the
ledger). Address and header-text rules are the base module ``reports.addresses``.

May import: ``reports.state`` (the ledger records deliveries and the archive index),
``reports.report`` (analysis and formatting for the email body) and the base modules
(``config``, ``errors``, ``logs``, ``atomic``, ``addresses``). Never ``schedule``, ``execute``,
``source`` or the top-level run.
"""
