"""The indicator kinds, one module per family; :mod:`..catalog` collects them."""
