"""The console: account managers' pages and the CRM's JSON API over the live state in Redis."""
