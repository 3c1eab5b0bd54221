"""The web portal: partners, district agencies and operators, each reading its own slice."""
