"""sandboxwatch command line: self-check, licence validation and scenario simulation."""
