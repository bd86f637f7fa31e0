"""KYC submissions and the compliance queue (API.md section 11)."""
