"""Effects: everything Firebreak must do outside its database, as rows, done once.

* ``models``: the ``effects`` table
* ``kinds``: the kinds of effect and the plain data each carries
* ``store``: writing, claiming and finishing rows (leases, lanes, ``SKIP LOCKED``)
* ``triggers``: what each timeline event causes (called by the core in the event's transaction)
* ``runner``: the claim loop that executes them on every replica
* ``failures``: what happens when one fails for good (timeline, the commander is told)

The Slack adapter (``bot.slack.effects``) registers the handlers that talk to Slack.
"""
