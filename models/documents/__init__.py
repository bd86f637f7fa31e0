"""Documents users download: monthly statements, trade confirmations, tax documents.

- ``tables.py``: the ``documents`` table and its enums (kind, format, status);
- ``statement.py``: what a statement says, read from the ledger, fills and lots;
- ``confirmation.py``: a trade confirmation from an order and its fills;
- ``render.py``: PDF (fpdf2) and CSV bytes;
- ``service.py``: ``Documents``: request, generate (jobs), list, download URLs.
"""

from models.documents.service import DocumentPage, Documents, encode_cursor, previous_month
from models.documents.tables import Document, DocumentFormat, DocumentKind, DocumentStatus

__all__ = [
    "Document",
    "DocumentFormat",
    "DocumentKind",
    "DocumentPage",
    "DocumentStatus",
    "Documents",
    "encode_cursor",
    "previous_month",
]
