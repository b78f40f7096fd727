"""What the services agree on, written once: tables, the SE's API shapes, token claims,
event channels. Imported by the services and the library; imports none of them."""
