package console

// MaxStreamsPerSession is maxStreamsPerSession, for the tests.
const MaxStreamsPerSession = maxStreamsPerSession
