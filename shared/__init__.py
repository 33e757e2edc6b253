"""Mechanisms every service shares: settings, logging, db, http, auth, messaging, contracts."""
