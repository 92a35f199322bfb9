"""CRM webhooks: ``churnwatch forward`` POSTs each alert, signed, retried, dead-lettered (issue 13)."""
