"""What a parse returns: ``ParsingResult`` with its persons and parts, the single-person
result, and the colour visualisation."""
