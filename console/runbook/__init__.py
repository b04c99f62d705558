"""Runbooks, approvals and the one gate every action passes through."""
