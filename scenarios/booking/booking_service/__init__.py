"""A multi-tenant appointment-booking service: the scaleready booking pack's demo target.

Clinics are the customers; each has an API key, practitioners, weekly opening hours, patients
and bookings. Healthy by default; ``--flaw NAME`` starts it with one of the mistakes listed in
`booking_service.flaws`. Run ``python -m booking_service --help``.
"""

__version__ = "1.0.0"
