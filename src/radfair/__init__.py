"""radfair: fairness audits for medical-imaging AI."""
__version__ = "0.1.0"
