/* test fixture: audit */
