"""The GraphQL view's JSON: orjson's encoding, read back as what Strawberry's own would say,
and the standard library for what orjson refuses."""

import json

from bff.graphql_view import BourseGraphQL
from bourse.settings import Settings
from resolvers.schema import schema


def _view() -> BourseGraphQL:
    return BourseGraphQL(schema, Settings())


def test_answers_decode_to_the_same_document_as_the_standard_librarys() -> None:
    data = {
        "data": {"asset": {"name": "Société Générale — 株式", "price": "101.25", "n": 3}},
        "errors": [{"message": "x", "path": ["a", 0], "extensions": {"code": "NOT_FOUND"}}],
    }
    text = _view().encode_json(data)
    assert isinstance(text, str)
    assert json.loads(text) == json.loads(json.dumps(data))
    assert " " not in text.replace("Société Générale — 株式", "")


def test_what_orjson_refuses_still_encodes() -> None:
    big = {"data": {"n": 2**70}, "keys": {1: "one"}}
    assert json.loads(_view().encode_json(big)) == {"data": {"n": 2**70}, "keys": {"1": "one"}}
