"""Operations on top of the flows: re-drive of failed/parked/drifted records and CRM ⇄ ERP reconciliation."""
