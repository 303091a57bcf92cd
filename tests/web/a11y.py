"""The accessibility scan of the browser tests: axe-core (npm, from node_modules) run in the page."""

from __future__ import annotations

from typing import Any

from tests.conftest import ROOT

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")
RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


def findings(page: Any, include: str | None = None) -> list[dict[str, Any]]:
    """The serious and critical axe findings on the page as it is now (or inside the ``include`` selector):
    ``{id, impact, help, targets}`` each. axe is evaluated through the browser's devtools protocol, which
    the page's content security policy does not govern (the page itself allows no inline script)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    violations = page.evaluate(
        """async ([include, tags]) => (await window.axe.run(include ? {include: [include]} : document,
               {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})).violations
             .map(v => ({id: v.id, impact: v.impact, help: v.help,
                         targets: v.nodes.map(n => n.target.join(' '))}))""", [include, RULES])
    return [v for v in violations if v["impact"] in BLOCKING]
