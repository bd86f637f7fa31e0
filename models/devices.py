"""A device's name from its User-Agent, for people reading their list of signed-in sessions.

Deliberately small (browser and operating system, by the tokens every major browser sends,
most specific first): this names a session for its owner, it is not analytics and not a
security decision, so a full UA database (and its upkeep) is not worth its weight here.
"""

from __future__ import annotations

# Order matters: Edge and Opera say "Chrome" too, Chrome says "Safari", Android says "Linux".
_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("CrOS", "ChromeOS"),
    ("Windows", "Windows"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
)


def describe_device(user_agent: str | None) -> str:
    """ "Chrome on macOS", "Firefox on Linux", or the agent's first word ("python-httpx")."""
    agent = (user_agent or "").strip()
    if not agent:
        return "Unknown device"
    browser = next((name for token, name in _BROWSERS if token in agent), None)
    system = next((name for token, name in _SYSTEMS if token in agent), None)
    if browser and system:
        return f"{browser} on {system}"
    if browser or system:
        return browser or system or ""
    return agent.split("/", 1)[0][:60]
