"""The night's SQL against an independent model of its rules, over random weeks."""
