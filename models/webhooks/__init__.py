"""Partner webhooks (issue 18 item 5): signed deliveries of order and funds events.

`tables.py` (endpoints, the event outbox, deliveries), `events.py` (`emit`: events and their
deliveries written in the transaction of the fact, with who-may-see-what), `service.py`
(`Webhooks`: endpoints and the delivery log for the API, URL checks), `sender.py` (claiming due
deliveries, signing, recording attempts; the loop is `workers/webhooks.py`).
"""
