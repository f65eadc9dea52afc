/* test fixture: device */
