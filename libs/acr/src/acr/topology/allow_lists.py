"""Each producing context's allow-list: the contexts whose accounts may subscribe to what it publishes (rules
forwarding from its bus, subscriptions to its topic, reads of its stream).

The producer's team owns its line. A consumer adds its subscription in its own slice; governance fails until
the producer has put the consumer's context here, and the exported producer stack names only these accounts
in its bus, topic and stream policies (docs/deploy.md, "Governance").
"""

from __future__ import annotations

ALLOW_LISTS: dict[str, tuple[str, ...]] = {
    "ride": ("bff", "fleet", "payment"),
    "fleet": ("car", "ride"),
    "monitoring": ("bff", "fleet", "ride"),
    "payment": ("reward", "ride"),
    "reward": ("ride",),
    "car": ("fleet", "monitoring"),
}
