"""One router per face or resource."""
