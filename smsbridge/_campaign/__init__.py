"""Campaigns: sends journaled recipient by recipient, that a dead process resumes where it
stopped (used by the command line and by the reliability simulator)."""

from .journal import FINAL, SQLITE_FILES, Campaign, Journal, JournalSummary
from .run import (
    CampaignObserver,
    Offload,
    pending,
    recover_in_flight,
    run_campaign,
    run_routed_campaign,
    to_thread,
)

__all__ = [
    "FINAL",
    "SQLITE_FILES",
    "Campaign",
    "CampaignObserver",
    "Journal",
    "JournalSummary",
    "Offload",
    "pending",
    "recover_in_flight",
    "run_campaign",
    "run_routed_campaign",
    "to_thread",
]
