"""The REST facade under `/api/` (issue 18 item 3): the seed's endpoints and shapes, on the
same services as GraphQL. See `app.py`."""
