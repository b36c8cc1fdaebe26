"""The fake Meta's per-portfolio messaging limit (META.md §7 "Messaging limit", §8.5): since Oct 2025 the limit
is the business portfolio's — unique users reached outside a customer service window in a moving 24 h, shared by
every number of every WABA of the portfolio. Mixed into SimulatorEngine.

Meta documents no dedicated error for a send over the limit; the fake refuses it synchronously with 131064
("messaging limit reached"), the closest documented code, so a sender that counts wrongly sees it at once."""

from __future__ import annotations

from apps.providers.simulator.rules import Followup, SimError

OVER_LIMIT_CODE = 131064
DAY = 24 * 3600.0
TIER_USERS = {"TIER_50": 50, "TIER_250": 250, "TIER_1K": 1000, "TIER_2K": 2000, "TIER_10K": 10000,
              "TIER_100K": 100000, "TIER_UNLIMITED": None}


class PortfolioLimits:
    @property
    def _portfolios(self) -> dict:
        if not hasattr(self, "_portfolio_table"):
            self._portfolio_table: dict[str, dict] = {}  # business id -> {"wabas", "limit", "tier", "reached"}
        return self._portfolio_table

    def portfolio_set(self, *, business_id: str, waba_ids: list[str], limit, users: int | None = None) -> list:
        """Put WABAs in one portfolio with a messaging limit (`limit`: a tier name such as TIER_2K, or a count of
        users; `users` overrides the count a tier stands for, for small tests) and announce it as Meta does: one
        business_capability_update per WABA. Returns the followups (webhooks) to deliver."""
        count = users if users is not None else (TIER_USERS.get(limit) if isinstance(limit, str) else int(limit))
        entry = self._portfolios.setdefault(str(business_id), {"wabas": set(), "reached": {}})
        entry.update(wabas=entry["wabas"] | {str(w) for w in waba_ids}, limit=count, tier=limit)
        return [Followup(0.0, self.business_capability_payload(waba_id=str(w), max_daily_conversations_per_business=limit))
                for w in waba_ids]

    def _portfolio_of(self, waba_id: str) -> dict | None:
        for entry in self._portfolios.values():
            if str(waba_id) in entry["wabas"]:
                return entry
        return None

    def portfolio_admit(self, *, waba_id: str, user: str, in_window: bool, now: float) -> None:
        """A template send: counts a user reached outside a window once per moving 24 h; refuses a new user
        past the portfolio's limit (131064)."""
        entry = self._portfolio_of(waba_id)
        if entry is None or entry.get("limit") is None or in_window:
            return
        reached = entry["reached"]
        for key in [k for k, at in reached.items() if now - at > DAY]:
            del reached[key]
        if user not in reached and len(reached) >= entry["limit"]:
            raise SimError(OVER_LIMIT_CODE, details=f"The business portfolio reached its messaging limit "
                                                    f"({entry['limit']} users in 24 hours).")
        reached.setdefault(user, now)

    def portfolio_state(self, business_id: str) -> dict:
        entry = self._portfolios.get(str(business_id)) or {"wabas": set(), "reached": {}}
        return {"wabas": sorted(entry["wabas"]), "limit": entry.get("limit"), "tier": entry.get("tier"),
                "reached": len(entry["reached"])}
