"""ftaudit: what did this fine-tuning run gain, and what did it cost?"""

__version__ = "0.1.0"
