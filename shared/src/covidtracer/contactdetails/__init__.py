"""A signed-in person's contact details (DESIGN §2.2): ``PUT/PATCH/GET/DELETE /user/details``."""
