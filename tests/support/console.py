"""Signing in to the staff console as a browser does: load the form, post it with its token."""

from __future__ import annotations

import re

import httpx


async def console_sign_in(
    http: httpx.AsyncClient, email: str, password: str, otp: str | None = None
) -> httpx.Response:
    form = await http.get("/console/login")
    match = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert match, form.text
    data = {"email": email, "password": password, "csrf": match.group(1)}
    if otp:
        data["otp"] = otp
    return await http.post("/console/login", data=data)
