"""ibl-reports: scheduled PDF reports for ibl.ai organisations."""
