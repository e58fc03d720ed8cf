package handlers

// connProgressUnavailable tells the tests whether connProgress measures the
// client on this system.
const connProgressUnavailable = true
